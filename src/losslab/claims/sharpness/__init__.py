"""The sharpness family: Keskar et al.'s large-batch claims (:mod:`.keskar`) and the Hessian spectra and
line-sharpness claims (:mod:`.spectra`)."""
