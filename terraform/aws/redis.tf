# The state: cache, async jobs, background queue and the upstream rate limiter. Created by default
# (local.use_redis, see main.tf), even for one task, so the paid answers outlive the task; more
# than one task must share it, or two tasks would each spend the whole 6sense quota and fetch the
# same lead twice. Either a replication group (default) or ElastiCache Serverless Valkey
# (var.state_store = "serverless", cluster mode only). UDF_STATE_URL then points here.

# -----------------------------------------------------------------------------------------------
# Network
# -----------------------------------------------------------------------------------------------

resource "aws_elasticache_subnet_group" "this" {
  count = local.use_redis ? 1 : 0

  name        = var.name
  description = "${var.name} Redis"
  subnet_ids  = var.subnet_ids

  tags = local.tags
}

resource "aws_security_group" "redis" {
  count = local.use_redis ? 1 : 0

  name_prefix = "${var.name}-redis-"
  description = "${var.name} Redis: reachable from the service tasks only"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_service" {
  count = local.use_redis ? 1 : 0

  security_group_id            = aws_security_group.redis[0].id
  description                  = "Redis from the ${var.name} tasks"
  referenced_security_group_id = aws_security_group.service.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6380 # Serverless: 6379 primary, 6380 reads
}

# -----------------------------------------------------------------------------------------------
# Redis (cluster mode disabled, TLS, auth token, encrypted at rest)
# -----------------------------------------------------------------------------------------------

resource "random_password" "redis_auth" {
  count = local.use_replication_group ? 1 : 0

  length  = 48
  special = false
}

resource "aws_elasticache_replication_group" "this" {
  count = local.use_replication_group ? 1 : 0
  #checkov:skip=CKV2_AWS_50:Automatic failover and Multi-AZ are on whenever redis.num_cache_clusters > 1, which is the default (2); checkov cannot evaluate the optional() default. Only an explicit num_cache_clusters = 1 turns them off.

  replication_group_id = var.name
  description          = "${var.name} shared state (UDF_STATE_URL)"
  engine               = "redis"
  engine_version       = var.redis.engine_version
  node_type            = var.redis.node_type
  num_cache_clusters   = var.redis.num_cache_clusters
  port                 = 6379

  automatic_failover_enabled = var.redis.num_cache_clusters > 1
  multi_az_enabled           = var.redis.num_cache_clusters > 1

  subnet_group_name  = aws_elasticache_subnet_group.this[0].name
  security_group_ids = [aws_security_group.redis[0].id]

  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth[0].result

  snapshot_retention_limit   = var.redis.snapshot_retention_limit
  auto_minor_version_upgrade = true
  apply_immediately          = false

  tags = local.tags
}

# -----------------------------------------------------------------------------------------------
# Or: ElastiCache Serverless (Valkey). Cluster mode only: the service's keys carry one hash tag,
# so its Lua scripts run there (UDF_STATE_URL=rediss+cluster://...). Always TLS, encrypted at rest.
# -----------------------------------------------------------------------------------------------

resource "aws_elasticache_serverless_cache" "this" {
  count = local.use_serverless ? 1 : 0

  name                     = var.name
  description              = "${var.name} shared state (UDF_STATE_URL)"
  engine                   = "valkey"
  major_engine_version     = var.serverless.major_engine_version
  subnet_ids               = var.subnet_ids
  security_group_ids       = [aws_security_group.redis[0].id]
  kms_key_id               = local.kms_key_arn
  snapshot_retention_limit = var.serverless.snapshot_retention_limit

  cache_usage_limits {
    data_storage {
      maximum = var.serverless.max_data_storage_gb
      unit    = "GB"
    }
  }

  tags = local.tags
}

locals {
  state_url = !local.use_redis ? null : (
    local.use_serverless
    ? "rediss+cluster://${try(aws_elasticache_serverless_cache.this[0].endpoint[0].address, "")}:${try(aws_elasticache_serverless_cache.this[0].endpoint[0].port, 6379)}/0"
    : "rediss://:${try(random_password.redis_auth[0].result, "")}@${try(aws_elasticache_replication_group.this[0].primary_endpoint_address, "")}:6379/${var.redis.db}"
  )
}

# -----------------------------------------------------------------------------------------------
# UDF_STATE_URL, as a secret (it carries the auth token)
# -----------------------------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "state_url" {
  count = local.use_redis ? 1 : 0
  #checkov:skip=CKV2_AWS_57:The value is derived from the ElastiCache auth token that Terraform manages; rotate by replacing random_password.redis_auth (terraform apply -replace) rather than by a rotation Lambda.

  name_prefix             = "${var.name}/state-url-"
  description             = "UDF_STATE_URL for ${var.name}: rediss:// URL of the shared state, with its auth token"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "state_url" {
  count = local.use_redis ? 1 : 0

  secret_id     = aws_secretsmanager_secret.state_url[0].id
  secret_string = local.state_url
}
