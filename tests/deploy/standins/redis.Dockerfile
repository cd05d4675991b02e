# Stand-in for the official redis image (compose names redis:7.4.5): Debian 12's Redis 7.0 with the
# official image's contract: the server runs as user redis in /data (the volume), any command given
# (compose passes `sh -c "exec redis-server ..."`), redis-cli on PATH. Differs: 7.0 instead of 7.4.
FROM crypto-ml-standin/debian:bookworm
RUN mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
