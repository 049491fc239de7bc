/**
 * Ports of services a developer is likely to run on the host itself: databases, queues,
 * search engines, model servers. A guest listener on one of these must never take the host's
 * port without the user's leave, or it captures the host service's clients (and passwords).
 * Ports under 1024 count too (see isWellKnownServicePort).
 */
export const WELL_KNOWN_SERVICE_PORTS: ReadonlySet<number> = new Set([
  1433, // SQL Server
  1521, // Oracle
  2375,
  2376, // Docker daemon
  3306, // MySQL, MariaDB
  5432, // PostgreSQL
  5672, // RabbitMQ (AMQP)
  5984, // CouchDB
  6379, // Redis
  6443, // Kubernetes API
  7687, // Neo4j (Bolt)
  8200, // Vault
  8500, // Consul
  9042, // Cassandra
  9092, // Kafka
  9200,
  9300, // Elasticsearch, OpenSearch
  11211, // memcached
  11434, // Ollama
  15672, // RabbitMQ management
  27017, // MongoDB
]);

/** Privileged ports (< 1024) are system services by convention: ssh, http, smtp, dns, ... */
const FIRST_UNPRIVILEGED_PORT = 1024;

/** Whether a port is a system service's by convention (below 1024, or a well-known database or broker port). */
export function isWellKnownServicePort(port: number): boolean {
  return port < FIRST_UNPRIVILEGED_PORT || WELL_KNOWN_SERVICE_PORTS.has(port);
}
