"""Maildir++ on disk: one module per thing Courier keeps there.

names (message file names), create (tmp → new), folders, uiddb
(courierimapuiddb), subscriptions (courierimapsubscribed), quota
(maildirsize), store (the Maildir object the servers use), and, from another
hand, keywords, acl and shared.
"""
