# syntax=docker/dockerfile:1
# The ATP server image (docs/deployment.md, "Container image"): the server and the `atp` command, published
# ReadyToRun, on a chiseled Ubuntu runtime (no shell, no package manager), as the non-root user 1654.
#   docker build -t atp:dev .
#   docker run --read-only --tmpfs /tmp:size=16m -p 8080:8080 -v atp-data:/var/lib/atp atp:dev
# Not built on the machine this file was written on (no Docker engine there); see docs/deployment.md.

ARG DOTNET_VERSION=10.0

FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION}-noble AS build
ARG TARGETARCH
WORKDIR /src

# Restore first, from the project files only, so that a source change does not download packages again.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Atp.Integrity/Atp.Integrity.csproj src/Atp.Integrity/
COPY src/Atp.Core/Atp.Core.csproj src/Atp.Core/
COPY src/Atp.Storage.Sqlite/Atp.Storage.Sqlite.csproj src/Atp.Storage.Sqlite/
COPY src/Atp.Storage.Postgres/Atp.Storage.Postgres.csproj src/Atp.Storage.Postgres/
COPY src/Atp.Server/Atp.Server.csproj src/Atp.Server/
COPY src/Atp.Cli/Atp.Cli.csproj src/Atp.Cli/
RUN case "${TARGETARCH:-amd64}" in amd64) echo linux-x64 ;; arm64) echo linux-arm64 ;; *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; esac > /tmp/rid \
 && dotnet restore src/Atp.Server/Atp.Server.csproj -r "$(cat /tmp/rid)" -p:PublishReadyToRun=true \
 && dotnet restore src/Atp.Cli/Atp.Cli.csproj -r "$(cat /tmp/rid)" -p:PublishReadyToRun=true

COPY src/ src/
# Framework-dependent (the runtime image brings ASP.NET Core), ReadyToRun for a fast start. The data directory is
# created here because the runtime image has no shell to create it.
RUN dotnet publish src/Atp.Server/Atp.Server.csproj -c Release -r "$(cat /tmp/rid)" --self-contained false --no-restore \
        -p:PublishReadyToRun=true -o /out/server \
 && dotnet publish src/Atp.Cli/Atp.Cli.csproj -c Release -r "$(cat /tmp/rid)" --self-contained false --no-restore \
        -p:PublishReadyToRun=true -o /out/cli \
 && mkdir -p /out/data

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}-noble-chiseled AS runtime
WORKDIR /app/server
COPY --from=build /out/server /app/server
COPY --from=build /out/cli /app/cli
# The only directory ATP writes to: the embedded store, the cell signing key, the rollback guard's published heads,
# ASP.NET Data Protection keys and (by default) export files. Owned by the app user, owner-only (ATP sets umask 077).
COPY --from=build --chown=1654:1654 --chmod=700 /out/data /var/lib/atp

# The server listens on every interface inside the container (ATP's own default is loopback only).
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Atp__DataDirectory=/var/lib/atp \
    PATH=/app/cli:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 8080
VOLUME ["/var/lib/atp"]

# Chiseled images' non-root "app" user, numeric so that Kubernetes' runAsNonRoot can check it.
USER 1654

# No HEALTHCHECK: the image has no shell or curl to run one. Probe GET /livez (process up) and GET /readyz (store,
# sealer and projector ready) from outside: Kubernetes probes (deploy/helm/atp) or the orchestrator's HTTP check.
ENTRYPOINT ["/app/server/Atp.Server"]
