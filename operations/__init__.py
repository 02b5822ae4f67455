"""Running leadscore day to day: scoring the open pipeline, the score history and trends."""
