# The service: ECS Fargate tasks running the image, behind an internal network load balancer
# that API Gateway reaches through its VPC link; autoscaling on CPU and on API requests per task.

# -----------------------------------------------------------------------------------------------
# Locals
# -----------------------------------------------------------------------------------------------

locals {
  # Container environment: the contract in DESIGN.md ("Configuration"). Secrets go in
  # local.container_secrets, never here.
  container_environment = merge(
    {
      UDF_HOST            = "0.0.0.0"
      UDF_PORT            = tostring(local.container_port)
      UDF_WORKERS         = tostring(var.workers)
      UDF_THREADS         = tostring(var.threads)
      UDF_SYNC_BUDGET_S   = tostring(var.sync_budget_s)
      SIXSENSE_BASE_URL   = var.sixsense_base_url
      SIXSENSE_RATE_LIMIT = var.sixsense_rate_limit
      SIXSENSE_SIMULATE   = var.sixsense_simulate ? "1" : "0"
    },
    # create_redis = false (one task only): SQLite on the task's volume, lost when the task is replaced.
    local.use_redis ? {} : { UDF_STATE_URL = "sqlite:////var/lib/udf/state.db" },
    var.sixsense_default_country == null ? {} : { SIXSENSE_DEFAULT_COUNTRY = var.sixsense_default_country },
    var.daily_call_budget == null ? {} : { UDF_DAILY_CALL_BUDGET = tostring(var.daily_call_budget) },
    var.extra_environment,
  )

  container_secrets = merge(
    # With the simulator no token is needed, and an empty secret would stop the task starting.
    var.sixsense_simulate ? {} : { SIXSENSE_API_TOKEN = local.sixsense_token_secret_arn },
    # ElastiCache (the default). The URL carries the auth token, so it travels as a secret.
    local.use_redis ? { UDF_STATE_URL = aws_secretsmanager_secret.state_url[0].arn } : {},
  )

  healthcheck_command = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.container_port}/healthz', timeout=4)"

  desired_count = var.autoscaling.enabled ? var.autoscaling.min_capacity : var.desired_count
}

# -----------------------------------------------------------------------------------------------
# Cluster and logs
# -----------------------------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "service" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn

  tags = local.tags
}

# -----------------------------------------------------------------------------------------------
# Network load balancer (the VPC link's target)
# -----------------------------------------------------------------------------------------------

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_20:A network load balancer forwards TCP and cannot redirect HTTP to HTTPS. TLS ends at API Gateway; this hop runs inside the VPC over the VPC link (PrivateLink).
  #checkov:skip=CKV_AWS_91:A network load balancer writes access logs only for TLS listeners; this one is TCP inside the VPC. Every request is logged by the API Gateway stage access log and by the service.
  name                             = var.name
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.subnet_ids
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.lb_deletion_protection

  tags = local.tags
}

resource "aws_lb_target_group" "this" {
  name                 = var.name
  port                 = local.container_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  # Readiness: the state backend answers and a token (or the simulator) is configured.
  health_check {
    protocol            = "HTTP"
    path                = "/readyz"
    port                = "traffic-port"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "this" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

# -----------------------------------------------------------------------------------------------
# Security group of the tasks
# -----------------------------------------------------------------------------------------------

resource "aws_security_group" "service" {
  name_prefix = "${var.name}-service-"
  description = "${var.name} tasks: HTTP from the VPC (load balancer), HTTPS and Redis out"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "service_http" {
  security_group_id = aws_security_group.service.id
  description       = "Service port from the VPC: the network load balancer and its health checks"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = local.container_port
  to_port           = local.container_port
}

resource "aws_vpc_security_group_egress_rule" "service_https" {
  security_group_id = aws_security_group.service.id
  description       = "HTTPS out: the 6sense API, ECR, Secrets Manager, CloudWatch Logs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "service_redis" {
  count = local.use_redis ? 1 : 0

  security_group_id            = aws_security_group.service.id
  description                  = "Redis (shared state)"
  referenced_security_group_id = aws_security_group.redis[0].id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# -----------------------------------------------------------------------------------------------
# Task definition and service
# -----------------------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # The root filesystem is read-only; these are the two writable paths (the image declares both
  # as VOLUMEs, so ECS copies their contents and ownership in).
  volume {
    name = "state"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = local.image
    essential              = true
    readonlyRootFilesystem = true
    stopTimeout            = 30

    portMappings = [{ name = "http", containerPort = local.container_port, protocol = "tcp" }]

    environment = [for k in sort(keys(local.container_environment)) : { name = k, value = local.container_environment[k] }]
    secrets     = [for k in sort(keys(local.container_secrets)) : { name = k, valueFrom = local.container_secrets[k] }]

    mountPoints = [
      { sourceVolume = "state", containerPath = "/var/lib/udf", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]

    # Liveness, same as the image's HEALTHCHECK (ECS ignores that one).
    healthCheck = {
      command     = ["CMD", "python", "-c", local.healthcheck_command]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }

    linuxParameters = { initProcessEnabled = true }
    ulimits         = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "udf"
      }
    }
  }])

  lifecycle {
    precondition {
      condition     = var.image != null || (var.create_ecr_repository && var.image_tag != null)
      error_message = "Set image, or image_tag together with create_ecr_repository = true."
    }
    precondition {
      condition     = local.use_redis || local.max_tasks == 1
      error_message = "More than one task needs shared state: leave create_redis null (or true) when desired_count or autoscaling.max_capacity is above 1."
    }
    precondition {
      condition     = var.sync_budget_s * 1000 < var.integration_timeout_ms
      error_message = "sync_budget_s must stay below integration_timeout_ms / 1000, or API Gateway cuts requests the service still means to answer."
    }
  }

  tags = local.tags
}

resource "aws_ecs_service" "this" {
  name                              = var.name
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = local.desired_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  enable_execute_command            = false
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 60

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.service.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  tags = local.tags

  depends_on = [aws_lb_listener.this, aws_iam_role_policy.execution_secrets]
}

# -----------------------------------------------------------------------------------------------
# Autoscaling: average CPU, and API requests per running task
# -----------------------------------------------------------------------------------------------

resource "aws_appautoscaling_target" "this" {
  count = var.autoscaling.enabled ? 1 : 0

  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity

  tags = local.tags
}

resource "aws_appautoscaling_policy" "cpu" {
  count = var.autoscaling.enabled ? 1 : 0

  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.cpu_target_percent
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_s
    scale_out_cooldown = var.autoscaling.scale_out_cooldown_s

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# A network load balancer has no request-count metric (ALBRequestCountPerTarget is ALB only),
# so requests per task = API Gateway Count for this stage / running tasks (Container Insights).
resource "aws_appautoscaling_policy" "requests" {
  count = var.autoscaling.enabled ? 1 : 0

  name               = "${var.name}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.requests_per_task_per_minute
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown_s
    scale_out_cooldown = var.autoscaling.scale_out_cooldown_s

    customized_metric_specification {
      metrics {
        id          = "requests"
        return_data = false

        metric_stat {
          stat = "Sum"

          metric {
            namespace   = "AWS/ApiGateway"
            metric_name = "Count"

            dimensions {
              name  = "ApiName"
              value = aws_api_gateway_rest_api.this.name
            }
            dimensions {
              name  = "Stage"
              value = aws_api_gateway_stage.this.stage_name
            }
          }
        }
      }

      metrics {
        id          = "tasks"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"

            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.this.name
            }
          }
        }
      }

      metrics {
        id          = "requests_per_task"
        label       = "API requests per running task per minute"
        expression  = "requests / tasks"
        return_data = true
      }
    }
  }
}
