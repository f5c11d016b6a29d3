"""losslab: reproduce the claims of loss-landscape research.

The library holds every computation; the Snakemake workflow (Snakefile, workflow/) only wires it together.
"""

__version__ = "0.1.0"
