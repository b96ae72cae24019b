"""What changes the inputs or the targets rather than the loss: colour, spatial masks."""
