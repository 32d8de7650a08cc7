"""Alert rules evaluated after every poll, and their delivery.

rules.py     the `alerting:` section of the configuration -> typed, validated rules
measures.py  what a rule can measure: a ClusterView -> labelled series
template.py  annotation templates, checked when the configuration is read
engine.py    the state machine, pure: (rules, view, now, state) -> new state, changes
state_file.py  alert state and outboxes saved across restarts
notifiers.py the payloads: webhook, Alertmanager, Slack, pure
outbox.py    notifications a receiver has not accepted yet: supersession, backoff, horizon, pure
delivery.py  one outbox and worker thread per notifier, the HTTP attempts
service.py   ties them together for the daemon
publish.py   alert state -> metric families and /api/v1/alerts JSON, pure
"""
