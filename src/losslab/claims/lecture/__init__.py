"""The optimization lecture's claims: those that train networks (:mod:`.trained`) and the exact toy computations
that need no run (:mod:`.toys`)."""
