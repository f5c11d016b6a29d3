"""The engine: any ``nn.Module`` and tensors in memory.

A network is a point in weight space (:mod:`.weights`); a loss is evaluated at any point of it by one functional
call (:class:`.weights.PointEvaluator`), and surfaces, interpolations, curves, MPO planes and Hessians all use that
call. Nothing here imports matplotlib, reads the workflow's config or knows the layout of a run directory: the
wings above (``plots``, ``pipeline``, ``claims``) do.
"""
