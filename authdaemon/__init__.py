"""authdaemon: Courier's authentication library (courier-authlib), in Python.

Depends on :mod:`courierpy` for the shared base (configuration, errors); the
mail side never imports from here except through the authdaemon client API.
"""
