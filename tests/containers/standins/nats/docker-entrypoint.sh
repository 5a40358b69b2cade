#!/bin/sh
# The official nats image's entrypoint: flags go to nats-server, a command runs as given.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- nats-server "$@"
fi
exec "$@"
