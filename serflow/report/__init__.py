"""What the HTML report (``snakemake --report``) and ``dvc plots`` show: tables and matplotlib figures.

* :mod:`serflow.report.summary`: the tables (one row per model beside the papers' figures, WA/UA per
  fold, the speech front-end's counts, runtime per rule from the ``benchmark:`` files) and the data
  files that ``dvc plots`` draws (mean training curves, test predictions);
* :mod:`serflow.report.plots`: the figures (Agg backend, no display needed);
* ``paper_figures.yaml``: the figures the seed papers report, each with its paper and table.

The workflow's rules are in ``rules/report.smk``, their adapters in ``workflow_scripts/report_*.py``.
"""
