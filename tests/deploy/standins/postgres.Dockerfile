# Stand-in for the official postgres image (compose names postgres:17.6): Debian 12's PostgreSQL 15
# with the official image's environment contract, re-stated in postgres-entrypoint.sh:
# POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, *.sql files in /docker-entrypoint-initdb.d run
# once on an empty PGDATA (/var/lib/postgresql/data), password auth over TCP, pg_isready on PATH.
# Differs: major version 15 instead of 17; only .sql init files (no .sh, no .sql.gz).
FROM crypto-ml-standin/debian:bookworm
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
RUN mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql "$PGDATA" \
 && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
