"""Task queue names, in one place for workers and starters alike."""

# One queue for now: flows and their activities are light; split when one area needs its own scaling.
MAIN = "backoffice"
