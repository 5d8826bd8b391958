"""Mean ± sd over seeds of the benchmark tables, gains and AIDE_k, and the files written."""

import os

import pytest

from training.seed_summary import aggregate, write_summary


def _result(delta1_v, delta1_av, aide):
    rows = {}
    for name, d1 in (('V', delta1_v), ('AV', delta1_av)):
        rows[name] = {'abs_rel': 1 - d1, 'sq_rel': 0.1, 'rmse': 1.0, 'rmse_log': 0.3,
                      'delta1': d1, 'delta2': 0.9, 'delta3': 0.95}
    return {'zero_shot': {'metrics': rows, 'aide': aide, 'gain_pairs': {'M_p': ('V', 'AV')},
                          'max_depth': 12.0, 'count': 5}}


def test_seeds_are_averaged_with_sample_sd_and_written(tmp_path):
    """Two seeds: mean and ddof-1 sd of every figure; the gains per seed; AIDE bands kept."""
    agg = aggregate({1: _result(0.2, 0.4, {0: (0.5, 3), 1: (0.1, 2)}),
                     2: _result(0.4, 0.6, {0: (0.3, 3)})})
    res = agg['zero_shot']
    assert res['metrics']['AV']['delta1'] == pytest.approx((0.5, 0.1 * 2 ** 0.5))
    d1 = res['gains']['M_p']['delta1_gain_pct']
    assert d1[2] == pytest.approx([100.0, 50.0]) and d1[0] == pytest.approx(75.0)
    assert res['aide'][0] == pytest.approx((0.4, 0.1 * 2 ** 0.5, 2))
    assert res['aide'][1] == (0.1, 0.0, 1)   # a band only one seed has: no spread to report
    text = write_summary(agg, str(tmp_path))
    assert 'δ1 +75.0 ± 35.4 %' in text and '0.500 ± 0.141' in text
    for f in ('table.md', 'table.csv', 'summary.yaml', 'aide_zero_shot.csv',
              'aide_zero_shot.png'):
        assert os.path.getsize(tmp_path / f) > 0
