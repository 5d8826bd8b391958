"""content_stamp: the hash that decides whether a cached model is reused."""

from avs_net_ros.tools.stamp import content_stamp


def test_stamp_follows_the_text_the_files_and_the_pattern_matches(tmp_path):
    (tmp_path / 'config.yaml').write_text('steps: 1\n')
    (tmp_path / 'code').mkdir()
    (tmp_path / 'code' / 'a.py').write_text('x = 1\n')
    cfg = str(tmp_path / 'config.yaml')

    def stamp(text='seed 1'):
        return content_stamp(text, [cfg], ['code/*.py'], repo=str(tmp_path))

    a = stamp()
    assert len(a) == 16 and stamp() == a
    assert stamp('seed 2') != a
    (tmp_path / 'code' / 'a.py').write_text('x = 2\n')
    b = stamp()
    assert b != a
    (tmp_path / 'code' / 'b.py').write_text('')   # a new file under a pattern counts too
    assert stamp() != b
    (tmp_path / 'config.yaml').write_text('steps: 2\n')
    assert stamp() not in (a, b)
