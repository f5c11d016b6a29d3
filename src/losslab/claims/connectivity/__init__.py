"""Mode connectivity (Garipov et al. 2018; Gotmare et al. 2018): what the DAG plans, torch-free (:mod:`.plan`),
and the jobs and claim analyses (:mod:`.analysis`)."""
