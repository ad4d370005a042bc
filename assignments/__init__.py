"""One folder per assignment: its checks, points, templates and mistake models."""
