# -----------------------------------------------------------------------------------------------
# General
# -----------------------------------------------------------------------------------------------

variable "name" {
  description = "Name prefix for every resource (ECS cluster and service, API, load balancer, Redis, roles). Lower case letters, digits and `-`, 3-28 characters, starting with a letter, e.g. `sixsense-udf`."
  type        = string
  default     = "sixsense-udf"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,26}[a-z0-9]$", var.name))
    error_message = "name must be 3-28 characters of lower case letters, digits and '-', start with a letter and not end with '-'."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags, e.g. `{ team = \"data\" }`."
  type        = map(string)
  default     = {}
}

# -----------------------------------------------------------------------------------------------
# Image
# -----------------------------------------------------------------------------------------------

variable "create_ecr_repository" {
  description = "Create an ECR repository named `var.name` (immutable tags, scan on push, KMS) to push the image to. `false` when `image` points elsewhere."
  type        = bool
  default     = true
}

variable "image" {
  description = "Full image reference to run, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/sixsense-udf:0.1.0`. `null` (default): the module's ECR repository with `image_tag`."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag in the module's ECR repository to run when `image` is `null`, e.g. `0.1.0` or a git sha. Tags are immutable: push a new tag for every build."
  type        = string
  default     = null
}

# -----------------------------------------------------------------------------------------------
# Network
# -----------------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC for the tasks, the network load balancer and Redis, e.g. `vpc-0abc...` (the default VPC works: `aws ec2 describe-vpcs --filters Name=is-default,Values=true`)."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Subnets of `vpc_id` for the tasks, the load balancer and Redis; two or more availability zones recommended. Private subnets need a NAT gateway (the service calls the 6sense API and pulls from ECR); public subnets need `assign_public_ip = true`."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "subnet_ids must hold at least one id like subnet-0123456789abcdef0."
  }
}

variable "assign_public_ip" {
  description = "Give each task a public IP. `true` only for public subnets without a NAT gateway (such as the default VPC); inbound traffic is still limited to the VPC by the security group."
  type        = bool
  default     = false
}

# -----------------------------------------------------------------------------------------------
# API Gateway
# -----------------------------------------------------------------------------------------------

variable "endpoint_type" {
  description = "API Gateway endpoint type: `REGIONAL` (Snowflake integration `API_PROVIDER = aws_api_gateway`) or `PRIVATE` (`aws_private_api_gateway`; also set `snowflake_vpc_id`)."
  type        = string
  default     = "REGIONAL"

  validation {
    condition     = contains(["REGIONAL", "PRIVATE"], var.endpoint_type)
    error_message = "endpoint_type must be REGIONAL or PRIVATE."
  }
}

variable "vpc_endpoint_ids" {
  description = "`PRIVATE` only: execute-api interface VPC endpoints of your own to attach to the API, e.g. `[\"vpce-0abc...\"]`. Snowflake reaches a private API through its own endpoint; leave `[]` unless you call the API from your VPC too."
  type        = list(string)
  default     = []
}

variable "snowflake_vpc_id" {
  description = "`PRIVATE` only: the VPC Snowflake calls from, the `snowflake-vpc-id` value of `select system$get_snowflake_platform_info();` in your Snowflake account, e.g. `vpc-0123...`."
  type        = string
  default     = null
}

variable "stage_name" {
  description = "API Gateway stage name; it becomes the last part of `gateway_url`, e.g. `v1`. Letters, digits and `_`."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,64}$", var.stage_name))
    error_message = "stage_name must be 1-64 letters, digits or '_'."
  }
}

variable "integration_timeout_ms" {
  description = "How long API Gateway waits for the service, in ms, `50`-`29000`. 29 s is the REST API limit; batches that need longer are answered 202 by the service and polled by Snowflake (keep `sync_budget_s` well below this)."
  type        = number
  default     = 29000

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 29000
    error_message = "integration_timeout_ms must be between 50 and 29000."
  }
}

variable "throttling" {
  description = "Stage-wide API Gateway throttling: `rate_limit` requests per second and `burst_limit`. Snowflake retries the 429s this produces. Example: `{ rate_limit = 100, burst_limit = 200 }`."
  type = object({
    rate_limit  = optional(number, 100)
    burst_limit = optional(number, 200)
  })
  default = {}
}

variable "extra_invoke_principal_arns" {
  description = "IAM role or user ARNs besides the Snowflake role that may invoke the API, e.g. your own role for a smoke test with `awscurl`. Everyone else is denied by the resource policy."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.extra_invoke_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/.+$", a))])
    error_message = "extra_invoke_principal_arns must be IAM role or user ARNs."
  }
}

variable "create_api_gateway_account_settings" {
  description = "Set this region's API Gateway account setting `cloudwatch_role_arn` (one per account and region, needed for stage logs). `false` when another stack already manages `aws_api_gateway_account`."
  type        = bool
  default     = true
}

variable "waf_web_acl_arn" {
  description = "Optional WAFv2 web ACL (scope `REGIONAL`) to associate with the API stage, e.g. `arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/...`. `null`: none."
  type        = string
  default     = null
}

# -----------------------------------------------------------------------------------------------
# Snowflake trust (two-step apply, see README.md)
# -----------------------------------------------------------------------------------------------

variable "snowflake_role_name" {
  description = "Name of the IAM role Snowflake assumes; `null`: `<name>-snowflake`. Its ARN is output `snowflake_role_arn`, which goes into the API integration's `API_AWS_ROLE_ARN`."
  type        = string
  default     = null
}

variable "snowflake_iam_user_arn" {
  description = "Step 2 of the trust setup: `API_AWS_IAM_USER_ARN` from `DESCRIBE INTEGRATION <integration>;`, e.g. `arn:aws:iam::123456789012:user/abc1-b-self1234`. `null` in step 1 (the role then trusts nobody outside this account)."
  type        = string
  default     = null

  validation {
    condition     = var.snowflake_iam_user_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:user/.+$", var.snowflake_iam_user_arn))
    error_message = "snowflake_iam_user_arn must be an IAM user ARN (API_AWS_IAM_USER_ARN from DESCRIBE INTEGRATION)."
  }
}

variable "snowflake_external_id" {
  description = "Step 2 of the trust setup: `API_AWS_EXTERNAL_ID` from `DESCRIBE INTEGRATION <integration>;`, copied whole (it often ends with `=`). Re-creating the integration changes it."
  type        = string
  default     = null
}

# -----------------------------------------------------------------------------------------------
# Service (container environment, see DESIGN.md "Configuration")
# -----------------------------------------------------------------------------------------------

variable "sixsense_simulate" {
  description = "`true`: serve from the built-in 6sense simulator (`SIXSENSE_SIMULATE=1`), no token needed, no credits spent. For a first end-to-end test."
  type        = bool
  default     = false
}

variable "sixsense_token_secret_arn" {
  description = "ARN of an existing Secrets Manager secret whose value is the 6sense API token. `null`: the module creates an empty secret (output `sixsense_token_secret_arn`) that you fill with `aws secretsmanager put-secret-value`."
  type        = string
  default     = null
}

variable "sixsense_api_token" {
  description = "Optional: the 6sense API token itself, written into the module's secret by Terraform. It then also sits in the Terraform state; prefer `null` and `aws secretsmanager put-secret-value`."
  type        = string
  default     = null
  sensitive   = true
}

variable "sixsense_base_url" {
  description = "`SIXSENSE_BASE_URL`: the 6sense API base URL."
  type        = string
  default     = "https://scribe.6sense.com"

  validation {
    condition     = can(regex("^https?://", var.sixsense_base_url))
    error_message = "sixsense_base_url must start with https:// (or http://)."
  }
}

variable "sixsense_rate_limit" {
  description = "`SIXSENSE_RATE_LIMIT`: the token's quota, shared by all tasks, e.g. `100/minute`."
  type        = string
  default     = "100/minute"

  validation {
    condition     = can(regex("^(?i)[0-9]+/[0-9.]*(s|sec|second|m|min|minute|h|hour|d|day)s?$", var.sixsense_rate_limit))
    error_message = "sixsense_rate_limit must look like 100/minute (units: second, minute, hour, day)."
  }
}

variable "sixsense_default_country" {
  description = "`SIXSENSE_DEFAULT_COUNTRY`: country used for rows without one, e.g. `USA`. `null`: unset."
  type        = string
  default     = null
}

variable "sync_budget_s" {
  description = "`UDF_SYNC_BUDGET_S`: seconds a POST may take before the service answers 202 and Snowflake polls. Must stay below `integration_timeout_ms` / 1000."
  type        = number
  default     = 20

  validation {
    condition     = var.sync_budget_s > 0 && var.sync_budget_s < 29
    error_message = "sync_budget_s must be between 0 and 29 (API Gateway cuts requests at 29 s)."
  }
}

variable "daily_call_budget" {
  description = "`UDF_DAILY_CALL_BUDGET`: most upstream calls per day across all tasks, a credit guard. `null`: unlimited."
  type        = number
  default     = null
}

variable "extra_environment" {
  description = "More container environment variables, e.g. `{ UDF_LOG_LEVEL = \"DEBUG\" }`. Not for secrets: `SIXSENSE_API_TOKEN` and `UDF_AUTH_SECRET` are rejected here."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.extra_environment), ["SIXSENSE_API_TOKEN", "UDF_AUTH_SECRET"])) == 0
    error_message = "Secrets do not belong in extra_environment; use the Secrets Manager secret."
  }
}

variable "workers" {
  description = "`UDF_WORKERS`: gunicorn worker processes per task."
  type        = number
  default     = 2

  validation {
    condition     = var.workers >= 1 && var.workers <= 32
    error_message = "workers must be between 1 and 32."
  }
}

variable "threads" {
  description = "`UDF_THREADS`: threads per gunicorn worker."
  type        = number
  default     = 8

  validation {
    condition     = var.threads >= 1 && var.threads <= 64
    error_message = "threads must be between 1 and 64."
  }
}

variable "task_cpu" {
  description = "Fargate task CPU units: `256`, `512`, `1024`, `2048` or `4096`."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.task_cpu)
    error_message = "task_cpu must be one of 256, 512, 1024, 2048, 4096."
  }
}

variable "task_memory" {
  description = "Fargate task memory in MiB, valid for `task_cpu` (e.g. `1024` with 512 CPU units)."
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "Tasks to run when autoscaling is off. More than one needs shared state: the module then creates Redis and sets `UDF_STATE_URL` to it."
  type        = number
  default     = 1

  validation {
    condition     = var.desired_count >= 1
    error_message = "desired_count must be at least 1."
  }
}

variable "autoscaling" {
  description = "Service autoscaling on average CPU and on API requests per task. `{ enabled = true, min_capacity = 1, max_capacity = 4, cpu_target_percent = 60, requests_per_task_per_minute = 600 }`. A `max_capacity` above 1 makes the module create Redis."
  type = object({
    enabled                      = optional(bool, false)
    min_capacity                 = optional(number, 1)
    max_capacity                 = optional(number, 4)
    cpu_target_percent           = optional(number, 60)
    requests_per_task_per_minute = optional(number, 600)
    scale_in_cooldown_s          = optional(number, 300)
    scale_out_cooldown_s         = optional(number, 60)
  })
  default = {}

  validation {
    condition     = var.autoscaling.min_capacity >= 1 && var.autoscaling.max_capacity >= var.autoscaling.min_capacity
    error_message = "autoscaling needs 1 <= min_capacity <= max_capacity."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for the service and the API access logs, in days (a value CloudWatch accepts, e.g. `365`)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for logs, secrets, Redis and ECR. `null`: the module creates one. Your own key's policy must let `logs.<region>.amazonaws.com` use it."
  type        = string
  default     = null
}

variable "lb_deletion_protection" {
  description = "Deletion protection on the network load balancer. Set `false` and apply before `terraform destroy`."
  type        = bool
  default     = true
}

# -----------------------------------------------------------------------------------------------
# Redis (shared state for more than one task)
# -----------------------------------------------------------------------------------------------

variable "create_redis" {
  description = "Create ElastiCache and point `UDF_STATE_URL` at it, so the cache of paid answers survives task replacement (deploys, Fargate maintenance). `null` or `true` (default): always. `false`: SQLite on the task's own volume, emptied whenever the task is replaced; allowed for one task only."
  type        = bool
  default     = null
}

variable "state_store" {
  description = "What `create_redis` creates: `replication_group` (default: ElastiCache Redis OSS nodes of `redis.node_type`, daily snapshots, auth token) or `serverless` (ElastiCache Serverless Valkey, cluster mode: `UDF_STATE_URL=rediss+cluster://...`, reachable from the service's security group only)."
  type        = string
  default     = "replication_group"

  validation {
    condition     = contains(["replication_group", "serverless"], var.state_store)
    error_message = "state_store must be replication_group or serverless."
  }
}

variable "serverless" {
  description = "ElastiCache Serverless settings (`state_store = \"serverless\"`): `major_engine_version` of Valkey, `max_data_storage_gb` (a cost ceiling), `snapshot_retention_limit` (days)."
  type = object({
    major_engine_version     = optional(string, "8")
    max_data_storage_gb      = optional(number, 1)
    snapshot_retention_limit = optional(number, 1)
  })
  default = {}
}

variable "redis" {
  description = "ElastiCache settings: `node_type` (e.g. `cache.t4g.micro`), `num_cache_clusters` (`2` or more: a replica in another zone with automatic failover; `1`: cheaper, no failover), `engine_version`, `snapshot_retention_limit` (days), `db` (database number in `UDF_STATE_URL`)."
  type = object({
    node_type                = optional(string, "cache.t4g.micro")
    num_cache_clusters       = optional(number, 2)
    engine_version           = optional(string, "7.1")
    snapshot_retention_limit = optional(number, 1)
    db                       = optional(number, 0)
  })
  default = {}

  validation {
    condition     = var.redis.num_cache_clusters >= 1 && var.redis.num_cache_clusters <= 6
    error_message = "redis.num_cache_clusters must be between 1 and 6."
  }
}

# -----------------------------------------------------------------------------------------------
# Snowflake objects (optional; the SQL route is `udf-service sql render`)
# -----------------------------------------------------------------------------------------------

variable "create_snowflake_objects" {
  description = "`true`: also create the Snowflake API integration and external functions with the snowflake provider (trust then completes in one apply). `false`: you run the SQL from `udf-service sql render --target aws`."
  type        = bool
  default     = false
}

variable "snowflake_api_integration_name" {
  description = "Name of the Snowflake API integration (`create_snowflake_objects = true`); the SQL route's default is the same, `sixsense_api`."
  type        = string
  default     = "sixsense_api"
}

variable "snowflake_database" {
  description = "Existing database for the external functions (`create_snowflake_objects = true`), e.g. `sixsense`."
  type        = string
  default     = null
}

variable "snowflake_schema" {
  description = "Existing schema for the external functions (`create_snowflake_objects = true`), e.g. `udf`."
  type        = string
  default     = null
}

variable "snowflake_function_name" {
  description = "Base name of the external functions (`create_snowflake_objects = true`): `<name>`, `<name>_cached`, `<name>_estimate`, each with the overloads (email, country), (all ten lead fields) and (lead object). Default `people_full`, as in the SQL."
  type        = string
  default     = "people_full"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_$]*$", var.snowflake_function_name))
    error_message = "snowflake_function_name must be a plain Snowflake identifier."
  }
}

variable "snowflake_max_batch_rows" {
  description = "MAX_BATCH_ROWS of the external functions: `full` for `<name>` (waits on 6sense; 100 is about a minute of the default quota), `cached` for `<name>_cached` and `<name>_estimate`. Example: `{ full = 100, cached = 1000 }`."
  type = object({
    full   = optional(number, 100)
    cached = optional(number, 1000)
  })
  default = {}
}
