"""Figures: the only wing that imports matplotlib. One style and one :func:`.figures.new_figure` /
:func:`.figures.save`; landscape figures (:mod:`.landscape`) and MPO pattern figures (:mod:`.patterns`).
A figure drawn from stored data is redrawn by ``snakemake figures`` (:func:`.figures.rerender`)."""
