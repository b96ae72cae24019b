"""Networks as models that know their layers (VGG16 and VGG19 from one table), their weight files and input
conventions, and the paper's normalised network."""
