"""The channels' and the bank's own statement files: the line model and strict streaming parsers."""
