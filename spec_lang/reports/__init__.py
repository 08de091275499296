"""Reports: the compile summary and IR listing, and the plots of training histories and the two-moons toy."""
