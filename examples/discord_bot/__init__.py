"""orra's Discord bot on orra-di: two agents, a moderated tool, and a daily summary."""
