variable "region" {
  description = "AWS region, ideally the one your Snowflake account runs in (`select current_region();`), e.g. `eu-west-1`."
  type        = string
}

variable "name" {
  description = "Name prefix for every resource, e.g. `sixsense-udf`."
  type        = string
  default     = "sixsense-udf"
}

variable "image_tag" {
  description = "Tag of the image pushed to the module's ECR repository, e.g. `0.1.0`. `null` only for the step-0 `-target` apply."
  type        = string
  default     = null
}

variable "snowflake_iam_user_arn" {
  description = "Step 2: `API_AWS_IAM_USER_ARN` from `DESCRIBE INTEGRATION <integration>;`. `null` in step 1."
  type        = string
  default     = null
}

variable "snowflake_external_id" {
  description = "Step 2: `API_AWS_EXTERNAL_ID` from `DESCRIBE INTEGRATION <integration>;` (keep a trailing `=`). `null` in step 1."
  type        = string
  default     = null
}

variable "sixsense_simulate" {
  description = "`true`: answer from the built-in simulator (no 6sense token, no credits). For a first end-to-end test."
  type        = bool
  default     = false
}

variable "desired_count" {
  description = "Tasks to run without autoscaling. Above 1 the module adds ElastiCache Redis for the shared state."
  type        = number
  default     = 1
}

variable "autoscaling" {
  description = "Autoscaling on CPU and requests per task, e.g. `{ enabled = true, min_capacity = 1, max_capacity = 4 }`. `max_capacity` above 1 adds Redis."
  type = object({
    enabled                      = optional(bool, false)
    min_capacity                 = optional(number, 1)
    max_capacity                 = optional(number, 4)
    cpu_target_percent           = optional(number, 60)
    requests_per_task_per_minute = optional(number, 600)
  })
  default = {}
}

variable "extra_invoke_principal_arns" {
  description = "Your own IAM role ARNs allowed to call the API besides Snowflake, e.g. for an `awscurl` smoke test."
  type        = list(string)
  default     = []
}

variable "lb_deletion_protection" {
  description = "Deletion protection on the load balancer. `terraform apply -var lb_deletion_protection=false` before `terraform destroy`."
  type        = bool
  default     = true
}

variable "snowflake_role" {
  description = "Snowflake role the snowflake provider uses, e.g. `ACCOUNTADMIN` (creating an API integration needs CREATE INTEGRATION)."
  type        = string
  default     = "ACCOUNTADMIN"
}

variable "create_snowflake_objects" {
  description = "`true`: Terraform also creates the API integration and the external functions (one apply, no step 2)."
  type        = bool
  default     = false
}

variable "snowflake_database" {
  description = "Existing database for the external functions (`create_snowflake_objects = true`), e.g. `ANALYTICS`."
  type        = string
  default     = null
}

variable "snowflake_schema" {
  description = "Existing schema for the external functions (`create_snowflake_objects = true`), e.g. `SIXSENSE`."
  type        = string
  default     = null
}
