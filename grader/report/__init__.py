"""Reports: built from results alone, never from the submissions."""
