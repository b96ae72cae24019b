"""VGG19 as a named-layer feature extractor, the weight files people have, and the paper's normalised network."""
