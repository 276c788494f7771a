"""Files that `halo-patch apply` writes into an Ultralytics tree (shipped as package data)."""
