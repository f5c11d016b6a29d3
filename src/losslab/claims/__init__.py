"""From runs on disk to verdicts. One module or folder per registry family, named as ``config/claims.yaml`` names
it (:mod:`.ingredients`, :mod:`.surfaces`, :mod:`.sharpness`, :mod:`.connectivity`, :mod:`.patterns`,
:mod:`.lecture`); :mod:`.runs` owns the run-directory layout, :mod:`.verdicts` the decision rules,
:mod:`.tables` the tables and :mod:`.summary` the verdict report ``claims.md``.

This package and its family folders import nothing heavy: the DAG's parse reads
:mod:`losslab.claims.connectivity.plan` without importing torch."""
