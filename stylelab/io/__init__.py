"""Images in and out: reading any image, resizing, atomic writes, the sample pictures."""
