# Makes the config folder importable as stylelab.configs, so Hydra finds it from any working directory.
