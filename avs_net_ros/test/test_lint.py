"""Style checks: flake8 with ament's settings and pep257 with ament's convention.

On a ROS 2 install with ament_flake8/ament_pep257 those tools run; elsewhere flake8 (with the
same plugins and the configuration in setup.cfg) and pydocstyle do the same checks.
"""

import os
import subprocess
import sys

import pytest

#: The repository root: the package folder avs_net_ros/ (its code, tests, launch files and
#: setup.py) and the Python beside it (training, benchmarks, scripts).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATHS = [p for p in ('avs_net_ros', 'training', 'benchmarks', 'scripts')
         if os.path.exists(os.path.join(ROOT, p))]
#: flake8 reads its configuration from the folder it runs in only; it is the package's.
FLAKE8_CONFIG = os.path.join('avs_net_ros', 'setup.cfg')
# ament_pep257's 'ament' convention: pep257 minus the missing-docstring checks D100-D107.
AMENT_PEP257_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107'


def _run(args):
    return subprocess.run([sys.executable, '-m'] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.linter
def test_flake8():
    try:
        from ament_flake8.main import main_with_errors
    except ImportError:
        r = _run(['flake8', '--config', FLAKE8_CONFIG] + PATHS)
        assert r.returncode == 0, f'flake8 found problems:\n{r.stdout}{r.stderr}'
    else:
        rc, errors = main_with_errors(argv=PATHS)
        assert rc == 0, f'Found {len(errors)} code style errors / warnings:\n' + '\n'.join(
            errors)


@pytest.mark.linter
def test_pep257():
    try:
        from ament_pep257.main import main
    except ImportError:
        r = _run(['pydocstyle', '--convention=pep257',
                  f'--add-ignore={AMENT_PEP257_IGNORE}'] + PATHS)
        assert r.returncode == 0, f'pydocstyle found problems:\n{r.stdout}{r.stderr}'
    else:
        assert main(argv=PATHS) == 0, 'Found code style errors / warnings'
