"""Alert rules (plain functions over customer and group state) and delivery sinks."""
