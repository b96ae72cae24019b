"""Video: style transfer for clips (Ruder et al. 2016), read from a video file or a folder of frames."""
