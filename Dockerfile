# The Phare agent as an image (docs/docker.md).
#
#   docker build -t phare .
#   docker run -d --name phare -p 8500:8500 -p 8600:8600/udp -v phare-data:/data phare
#
# Stages: `pack` builds the package as npm publishes it (`npm pack`: prepack compiles dist/) and installs
# that tarball with production dependencies only; the runtime stage copies the installed tree, so no
# compiler, dev dependency or source file ships. `PHARE_SOURCE=context` takes the installed tree from
# ./phare in the build context instead (an offline build: the tests install the tarball on the host, where
# npm's cache is, and pass their own BASE_IMAGE, a Debian bookworm with Node at /usr/local/bin/node).
# Needs BuildKit (DOCKER_BUILDKIT=1, the default since Docker 23), which builds only the stages used.
ARG BASE_IMAGE=node:24-bookworm-slim
ARG PHARE_SOURCE=pack

FROM ${BASE_IMAGE} AS pack
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm pack --pack-destination /tmp \
 && mkdir -p /opt/phare \
 && npm install --prefix /opt/phare --omit=dev --no-audit --no-fund /tmp/phare-*.tgz

FROM ${BASE_IMAGE} AS context
COPY phare/ /opt/phare/

FROM ${PHARE_SOURCE} AS installed

FROM ${BASE_IMAGE}
COPY --from=installed /opt/phare /opt/phare
# A fixed non-root UID (no user database needed; the data volume is created owned by it).
RUN mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
# Configuration is PHARE_* variables (README's flag table), e.g. -e PHARE_NODE=edge-1 -e PHARE_DOCKER=true.
# Inside a container the agent listens on every interface: the container's network is the boundary.
ENV PHARE_HTTP_ADDR=0.0.0.0:8500 \
    PHARE_DNS_ADDR=0.0.0.0:8600 \
    PHARE_DATA_DIR=/data \
    NODE_ENV=production
VOLUME /data
EXPOSE 8500 8600/udp 8600/tcp
# Healthy once the agent answers its leader endpoint (Consul's own readiness probe, /v1/status/leader),
# on whatever port PHARE_HTTP_ADDR names. Exec form: no shell needed in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.PHARE_HTTP_ADDR||'').split(':').pop()||'8500';fetch('http://127.0.0.1:'+p+'/v1/status/leader',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 is fine: the agent handles SIGTERM (docker stop) and exits 0 once its store is closed.
ENTRYPOINT ["node", "/opt/phare/node_modules/phare/bin/phare.js"]
CMD ["agent"]
