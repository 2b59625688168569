"""One router per aggregate, plus reports."""
