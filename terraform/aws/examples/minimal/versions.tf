terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    snowflake = {
      source  = "snowflakedb/snowflake"
      version = "~> 2.3"
    }
  }
}
