# The Nexus appliance image: Debian 12 + nginx + the nexus executable + systemd units, built two ways
# from the same provisioners: an AWS AMI (amazon-ebs) and a local VM image (qemu).
#
#   npm run build                                   # dist/nexus
#   packer build -only=amazon-ebs.debian packer/    # AMI (AWS credentials from the usual places)
#   packer build -only=qemu.debian -var base_image=debian-12-generic-amd64.qcow2 packer/
#
# Written for Debian's packer 1.6.6 (both builders built in, no plugin downloads). Nothing secret is
# baked in: first boot makes the master key, setup token and TLS certificate on each instance.

variable "nexus_binary" {
  type        = string
  default     = "dist/nexus"
  description = "The single executable built by npm run build."
}

variable "repo_root" {
  type        = string
  default     = "."
  description = "Repository checkout that holds appliance/, nginx/ and docs/."
}

variable "aws_region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "volume_size_gb" {
  type    = number
  default = 8
}

variable "base_image" {
  type        = string
  default     = "debian-12-generic-amd64.qcow2"
  description = "qemu: path or URL of a Debian 12 cloud image (https://cloud.debian.org/images/cloud/bookworm/)."
}

variable "base_image_checksum" {
  type        = string
  default     = "none"
  description = "qemu: checksum of base_image, e.g. sha512:…; \"none\" skips the check."
}

variable "qemu_accelerator" {
  type    = string
  default = "kvm"
}

# Only used to reach the qemu build VM; cloud-init sets it from packer/http/user-data and the last
# provisioner locks the account again, so the image carries no usable password.
variable "qemu_ssh_password" {
  type    = string
  default = "nexus-image-build"
}

locals {
  version    = "0.1.0"
  image_name = "nexus-${local.version}-debian-12-amd64-{{timestamp}}"
  staging    = "/tmp/nexus-install"
}

source "amazon-ebs" "debian" {
  region        = var.aws_region
  instance_type = var.instance_type
  ami_name      = local.image_name
  ssh_username  = "admin"

  # Debian's official images (https://wiki.debian.org/Cloud/AmazonEC2Image/Bookworm).
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"]
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_type           = "gp3"
    volume_size           = var.volume_size_gb
    iops                  = 3000 # gp3 baseline
    throughput            = 125
    delete_on_termination = true
  }

  ami_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_type           = "gp3"
    volume_size           = var.volume_size_gb
    iops                  = 3000 # gp3 baseline
    throughput            = 125
    delete_on_termination = true
  }

  ena_support   = true
  sriov_support = true
  encrypt_boot  = false

  tags = {
    Name    = local.image_name
    Product = "nexus"
    Version = local.version
    Base    = "{{ .SourceAMIName }}"
  }
}

source "qemu" "debian" {
  iso_url          = var.base_image
  iso_checksum     = var.base_image_checksum
  disk_image       = true
  format           = "qcow2"
  disk_size        = "${var.volume_size_gb}G"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.qemu_accelerator
  headless         = true
  memory           = 2048
  cpus             = 2
  output_directory = "output-qemu"
  vm_name          = "${local.image_name}.qcow2"

  # cloud-init's NoCloud datasource, served by packer's HTTP server (user-data, meta-data).
  http_directory = "${path.root}/http"
  qemuargs = [
    ["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"],
  ]

  ssh_username     = "debian"
  ssh_password     = var.qemu_ssh_password
  ssh_timeout      = "15m"
  shutdown_command = "sudo shutdown -P now"
}

build {
  sources = ["source.amazon-ebs.debian", "source.qemu.debian"]

  provisioner "shell" {
    inline = [
      "cloud-init status --wait || true",
      "mkdir -p ${local.staging}/appliance ${local.staging}/nginx ${local.staging}/docs",
    ]
  }

  provisioner "file" {
    source      = var.nexus_binary
    destination = "${local.staging}/nexus"
  }

  provisioner "file" {
    sources = [
      "${var.repo_root}/appliance/install.sh",
      "${var.repo_root}/appliance/nexus.service",
      "${var.repo_root}/appliance/nexus-first-boot.service",
      "${var.repo_root}/appliance/nexus-tls.path",
      "${var.repo_root}/appliance/nexus-tls-reload.service",
      "${var.repo_root}/appliance/nexus-backup.service",
      "${var.repo_root}/appliance/nexus-backup.timer",
    ]
    destination = "${local.staging}/appliance/"
  }

  provisioner "file" {
    source      = "${var.repo_root}/nginx/nexus.conf.template"
    destination = "${local.staging}/nginx/nexus.conf.template"
  }

  provisioner "file" {
    sources = [
      "${var.repo_root}/docs/appliance.md",
      "${var.repo_root}/docs/backup.md",
    ]
    destination = "${local.staging}/docs/"
  }

  provisioner "shell" {
    inline = [
      "chmod 0755 ${local.staging}/nexus ${local.staging}/appliance/install.sh",
      "sudo ${local.staging}/appliance/install.sh --binary ${local.staging}/nexus --image",
      "/usr/local/bin/nexus version",
      "sudo rm -rf ${local.staging}",
    ]
  }

  # The build account's password (qemu only) must not survive into the image.
  provisioner "shell" {
    only   = ["qemu.debian"]
    inline = ["sudo passwd --lock debian", "sudo rm -f /etc/ssh/sshd_config.d/90-packer-build.conf"]
  }

  # Last: forget this build's cloud-init state and logs, so every instance runs cloud-init (and
  # therefore gets its own SSH host keys and user) and first boot as new.
  provisioner "shell" {
    inline = [
      "sudo cloud-init clean --logs",
    ]
  }

  # IMDSv2 required afterwards: instances launched from the AMI refuse IMDSv1 by default. packer 1.6.6
  # has no setting for the AMI attribute, so the AWS CLI sets it on the artifact packer recorded.
  post-processors {
    post-processor "manifest" {
      only       = ["amazon-ebs.debian"]
      output     = "packer-manifest.json"
      strip_path = true
    }
    post-processor "shell-local" {
      only = ["amazon-ebs.debian"]
      environment_vars = ["AWS_REGION=${var.aws_region}"]
      inline = [
        "ami=$(sed -n 's/.*\"artifact_id\": *\"[^:]*:\\(ami-[0-9a-f]*\\)\".*/\\1/p' packer-manifest.json | tail -n 1)",
        "test -n \"$ami\" || { echo 'no AMI id in packer-manifest.json' >&2; exit 1; }",
        "aws ec2 modify-image-attribute --region \"$AWS_REGION\" --image-id \"$ami\" --imds-support v2.0",
        "echo \"$ami: IMDSv2 required\"",
      ]
    }
  }
}
