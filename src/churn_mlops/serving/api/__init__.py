"""HTTP layer of the serving app: dependencies and one router per route group."""
