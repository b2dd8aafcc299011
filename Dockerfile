FROM node:20-bookworm-slim
# Debian's ffmpeg (with drawtext for the demo clock); the npm-shipped ffmpeg is not needed here.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional && npm cache clean --force
COPY tsconfig.json config.yaml ./
COPY src ./src
COPY web ./web
# The config lives in a volume so that streams added through the API survive the container.
RUN mkdir -p /config && cp config.yaml /config/config.yaml
VOLUME /config
EXPOSE 1984/tcp 8554/tcp
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/main.ts", "--config", "/config/config.yaml"]
