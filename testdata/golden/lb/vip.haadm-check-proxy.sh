#!/bin/sh
# Managed by haadm: keepalived gives the API's virtual address up when this fails.
pid=$(cat /run/nginx.pid 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid"
