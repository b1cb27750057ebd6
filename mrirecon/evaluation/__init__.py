"""Evaluation on test subjects, free of Prefect and MLflow.

- :mod:`~mrirecon.evaluation.scoring`: the zero-filled and CS baselines, and one trained grid point
  (reconstruct test / noisy test / train slices, metrics, diagnostics);
- :mod:`~mrirecon.evaluation.report`: the ``metrics.json`` document, ``grid.csv``, plot data, headline numbers;
- :mod:`~mrirecon.evaluation.uncertainty`: 95% bootstrap intervals over test subjects, paired differences;
- :mod:`~mrirecon.evaluation.findings`: the effect of each grid axis between neighbouring values, the best
  configuration per intensity, ``findings.csv`` and the sweep plot data;
- :mod:`~mrirecon.evaluation.tables`: the one table renderer (README blocks, Prefect artifacts, ``mrirecon show``);
- :mod:`~mrirecon.evaluation.figures`: reconstruction panels and metric plots (incl. metrics vs each grid axis).

The evaluate stage itself (paths in, reports out) is :mod:`mrirecon.stages.evaluate`.
"""
