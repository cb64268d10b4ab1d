"""Files shipped inside the package: the nano base model (`nano_base/`, built by `r1omni pretrain`)."""
