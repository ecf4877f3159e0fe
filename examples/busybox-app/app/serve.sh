#!/bin/sh
# A pretend service: prints who it is, then answers "hello" on port 8080.
echo "busybox-app $VERSION (build $(cat /srv/build-id))"
exec httpd -f -p 8080 -h /srv/app/www
