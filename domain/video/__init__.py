"""Video: the options and results of video jobs, the errors of bad input, and the clip-selection rule."""
