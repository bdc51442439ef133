"""Issues: the recurring-issue counts behind priorities, per input partition."""
