"""Point the ROS wheels' exported CMake targets at this interpreter's Python and NumPy headers.

Run with the Python of the environment the ROS 2 wheels are installed in, after installing them
and before building an interface package against them. The wheels were built in a manylinux
container whose include directories (/opt/python/cpXY-cpXY/...) are written into every message
package's export_<pkg>__rosidl_generator_pyExport.cmake; CMake refuses an imported target whose
include directory does not exist, so ``rosidl_generate_interfaces`` fails on any package that
depends on std_msgs. Idempotent; on a ROS install from apt nothing matches and nothing changes.
"""
from pathlib import Path
import re
import sys
import sysconfig

import numpy

BUILD_PATH = re.compile(
    r'/opt/python/cp\d+-cp\d+/(?:(?P<python>include/python[\d.]+)'
    r'|(?P<numpy>lib/python[\d.]+/site-packages/numpy/_core/include))')


def fix(prefix: Path) -> int:
    """Rewrite the build machine's include paths under ``prefix``/share; return files changed."""
    python_include = sysconfig.get_paths()['include']
    numpy_include = numpy.get_include()

    def local(match: re.Match) -> str:
        return python_include if match.group('python') else numpy_include

    changed = 0
    for path in sorted((prefix / 'share').glob('*/cmake/*.cmake')):
        text = path.read_text()
        new = BUILD_PATH.sub(local, text)
        if '/opt/python/' in new:
            raise SystemExit(f'{path}: a build path this script does not know: update it')
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == '__main__':
    prefix = Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f'{fix(prefix)} CMake files under {prefix}/share now use this Python and NumPy')
