"""Statistics every floor uses: tie-aware ranking, the one bootstrap over leads, calibration
(scores -> probabilities) and the evaluation metrics.

The ground floor: imports nothing of ours, so that training, monitoring, the rules and the
scorer all compute a decile, an ECE or an interval the same way.
"""
