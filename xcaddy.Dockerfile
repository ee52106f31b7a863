# Caddy with mcpgate, built by xcaddy on the official images:
#
#	docker build -f xcaddy.Dockerfile -t caddy-mcpgate .
#	docker run -p 443:443 -v $PWD/Caddyfile:/etc/caddy/Caddyfile caddy-mcpgate
#
# The versions are pinned; change them together.
FROM caddy:2.11.9-builder-alpine AS builder

COPY . /src/caddy-mcpgate
RUN xcaddy build v2.11.9 \
	--with github.com/mcpgate/caddy-mcpgate=/src/caddy-mcpgate

FROM caddy:2.11.9-alpine

COPY --from=builder /usr/bin/caddy /usr/bin/caddy
