"""After promotion: the deployed student's daily calls and how they hold up live."""
