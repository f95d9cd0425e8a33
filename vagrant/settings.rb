# Load, merge and check settings.yaml for the Vagrantfile: the Ruby twin of labkit/settings.py.
# Order: settings.yaml < settings.local.yaml < LABKIT_* environment variables.
# tests/t1/test_vagrantfile.py runs both loaders on the same inputs and compares the results.
require "yaml"
require "ipaddr"
require "json"
require "rbconfig"

module LabkitSettings
  class Error < StandardError; end

  SETTINGS_FILE = "settings.yaml"
  LOCAL_FILE = "settings.local.yaml"
  PREFIX = "LABKIT_"
  HOSTNAME = /\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\z/

  module_function

  # `host_cpu`: what `arch: auto` reads (labkit/settings.py reads Python's platform.machine()).
  def load(root, env = ENV, host_cpu = RbConfig::CONFIG["host_cpu"])
    defaults = read(File.join(root, SETTINGS_FILE), true)
    local = read(File.join(root, LOCAL_FILE), false)
    raise Error, "#{LOCAL_FILE} may not change 'limits'. Fix: remove the limits section from it" if local.key?("limits")
    data = merge(defaults, local, [])
    env.keys.select { |k| k.start_with?(PREFIX) }.sort.each { |k| apply_env(data, k, env[k]) }
    check(data, root, ->(path) { origin(path, env, local) }, host_cpu)
    data
  end

  # The settings section naming the boxes for this guest architecture (labkit/settings.py boxes_key).
  def boxes_key(arch)
    arch == "amd64" ? "boxes" : "#{arch}_boxes"
  end

  def read(path, required)
    unless File.exist?(path)
      raise Error, "#{path} is missing. Fix: run labkit from a complete checkout of the project" if required
      return {}
    end
    text = File.binread(path).force_encoding(Encoding::UTF_8) # whatever the locale says
    raise Error, "#{File.basename(path)} is not UTF-8 text. Fix: save it as UTF-8" unless text.valid_encoding?
    document = Psych.parse(text)
    refuse_repeats_and_dates(document.root, [], File.basename(path)) if document
    tree = YAML.safe_load(text) || {}
    raise Error, "#{File.basename(path)} must be a mapping of settings. Fix: see #{SETTINGS_FILE} for the shape" unless tree.is_a?(Hash)
    tree
  rescue Psych::SyntaxError => e
    raise Error, "#{File.basename(path)} line #{e.line} is not valid YAML. Fix: fix the syntax or delete the file"
  end

  # What YAML 1.1 reads as a timestamp (PyYAML's pattern, so both loaders refuse the same values).
  DATE = /\A(?:\d{4}-\d\d-\d\d|\d{4}-\d\d?-\d\d?(?:[Tt]|[ \t]+)\d\d?:\d\d:\d\d(?:\.\d*)?(?:[ \t]*(?:Z|[-+]\d\d?(?::\d\d)?))?)\z/

  # A repeated key (YAML silently keeps the last) or a date (`memory: 2024-01-01`) is one line naming it,
  # like labkit/settings.py's _loader and _refuse_dates.
  def refuse_repeats_and_dates(node, path, name)
    case node
    when Psych::Nodes::Mapping
      lines = {}
      node.children.each_slice(2) do |key, value|
        if key.is_a?(Psych::Nodes::Scalar)
          if lines.key?(key.value)
            raise Error, "#{name} line #{key.start_line + 1} repeats '#{key.value}' from line #{lines[key.value]}. " \
                         "Fix: keep only one of them (YAML would silently use the last)"
          end
          lines[key.value] = key.start_line + 1
        end
        refuse_repeats_and_dates(value, path + [key.respond_to?(:value) ? key.value : "?"], name)
      end
    when Psych::Nodes::Sequence
      node.children.each_with_index { |child, i| refuse_repeats_and_dates(child, path + [i], name) }
    when Psych::Nodes::Scalar
      if node.plain && node.tag.nil? && node.value.match?(DATE)
        raise Error, "'#{dotted(path)}' in #{name} reads as a date (#{node.value}). " \
                     "Fix: write a number, or quote it to make it text: \"#{node.value}\""
      end
    end
  end

  def dotted(path)
    path.join(".")
  end

  def env_name(path)
    PREFIX + path.map { |p| p.to_s.upcase }.join("__")
  end

  def type_name(value)
    { Hash => "mapping", Array => "list", Integer => "whole number", String => "text",
      TrueClass => "true/false", FalseClass => "true/false" }.fetch(value.class, value.class.name)
  end

  def same_type?(a, b)
    return [true, false].include?(a) && [true, false].include?(b) if [true, false].include?(a)
    a.class == b.class
  end

  def merge(base, over, path)
    if base.is_a?(Hash) && over.is_a?(Hash)
      out = base.dup
      over.each do |key, value|
        unless base.key?(key)
          raise Error, "unknown setting '#{dotted(path + [key])}' in #{LOCAL_FILE}. Fix: check the spelling against #{SETTINGS_FILE}"
        end
        out[key] = merge(base[key], value, path + [key])
      end
      return out
    end
    if !path.empty? && !same_type?(base, over)
      raise Error, "'#{dotted(path)}' in #{LOCAL_FILE} must be a #{type_name(base)}, got #{over.to_json}. Fix: use a value like #{base.to_json}"
    end
    over
  end

  def apply_env(data, key, raw)
    parts = key.delete_prefix(PREFIX).split("__").map(&:downcase)
    raise Error, "#{key} may not change 'limits'. Fix: unset #{key}" if parts.first == "limits"
    node = data
    parts.each_with_index do |part, i|
      if node.is_a?(Array)
        unless part.match?(/\A\d+\z/) && part.to_i < node.size
          raise Error, "#{key}: there is no item #{part} in '#{dotted(parts[0...i])}'. Fix: use an index below #{node.size}"
        end
        part = part.to_i
      elsif !node.is_a?(Hash) || !node.key?(part)
        raise Error, "#{key} is not a labkit setting. Fix: unset it, or check the spelling against #{SETTINGS_FILE}"
      end
      if i == parts.size - 1
        current = node[part]
        if current.is_a?(Hash) # replacing a section would drop the keys it leaves out
          first, example = current.first
          raise Error, "#{key} cannot set all of '#{dotted(parts)}' at once. Fix: set one setting at a time, " \
                       "like #{key}__#{first.upcase}=#{example.is_a?(String) ? example : example.to_json}"
        end
        value = current.is_a?(String) ? raw : parse_env_value(raw)
        unless same_type?(current, value)
          raise Error, "#{key}=#{raw.to_json}: '#{dotted(parts)}' must be a #{type_name(current)}. Fix: use a value like #{current.to_json}"
        end
        node[part] = value
      else
        node = node[part]
      end
    end
  end

  def parse_env_value(raw)
    YAML.safe_load(raw)
  rescue Psych::SyntaxError, Psych::DisallowedClass # a date stays its text, as in labkit/settings.py
    raw
  end

  def origin(path, env, local)
    return env_name(path) if env.key?(env_name(path))
    node = local
    path.each do |part|
      if node.is_a?(Hash) && node.key?(part) then node = node[part]
      elsif node.is_a?(Array) && part.is_a?(Integer) && part < node.size then node = node[part]
      else return SETTINGS_FILE
      end
    end
    LOCAL_FILE
  end

  def set_fix(path, value)
    "set #{env_name(path)}=#{value}, or #{dotted(path)}: #{value} in #{LOCAL_FILE}"
  end

  def check(data, root, origin, host_cpu)
    limits = data["limits"]
    fail_at = lambda do |path, problem, fix|
      raise Error, "#{dotted(path)} #{problem} (from #{origin.call(path)}). Fix: #{fix}"
    end
    provider = data["provider"]
    unless limits["providers"].include?(provider)
      fail_at.call(["provider"], "'#{provider}' is not supported", "use one of: #{limits['providers'].join(', ')}")
    end
    if data["arch"] == "auto"
      cpu = host_cpu.to_s.downcase
      unless limits["host_cpus"].key?(cpu)
        fail_at.call(["arch"], "auto: this computer's CPU '#{cpu}' has no guest in the lab", "use an x86-64 or an Apple Silicon (arm64) laptop")
      end
      data["arch"] = limits["host_cpus"][cpu]
    elsif !limits["archs"].include?(data["arch"])
      fail_at.call(["arch"], "'#{data['arch']}' is not supported", "use auto or one of: #{limits['archs'].join(', ')}")
    end
    boxes = boxes_key(data["arch"])
    box = data[boxes][provider]
    fail_at.call([boxes, provider], "is not set", "name the Vagrant box for #{provider}") unless box.is_a?(String) && !box.empty?
    vm = data["vm"]
    if vm["cpus"] < limits["min_cpus"]
      fail_at.call(%w[vm cpus], "= #{vm['cpus']} is too few: kubeadm needs at least #{limits['min_cpus']} CPUs",
                   set_fix(%w[vm cpus], limits["min_cpus"]))
    end
    if vm["memory"] < limits["min_memory"]
      fail_at.call(%w[vm memory], "= #{vm['memory']} MB is too little: kubeadm needs at least #{limits['min_memory']} MB",
                   set_fix(%w[vm memory], 2048))
    end
    { "libvirt_driver" => "libvirt_drivers", "libvirt_management_network" => "libvirt_management_networks" }.each do |key, allowed|
      unless limits[allowed].include?(vm[key])
        fail_at.call(["vm", key], "'#{vm[key]}' is not supported", "use one of: #{limits[allowed].join(', ')}")
      end
    end
    check_nodes(data["nodes"], limits, fail_at)
    add_workers(data, limits, fail_at)
    guest = data["bundle"]["guest_dir"]
    fail_at.call(%w[bundle guest_dir], "'#{guest}' is not an absolute path in the VM", "use a path like /opt/labkit/bundle") unless guest.start_with?("/")
    data["provision"].each_with_index do |step, i|
      next if step.is_a?(String) && File.file?(File.join(root, "provision", "#{step}.sh"))
      fail_at.call(["provision", i], "names '#{step}', which has no script provision/#{step}.sh", "use the names of scripts in provision/")
    end
  end

  def check_nodes(nodes, limits, fail_at)
    fail_at.call(["nodes"], "is empty", "list at least one node with role master") if nodes.empty?
    allowed = IPAddr.new(limits["hostonly_range"])
    names = []
    ips = []
    nodes.each_with_index do |node, i|
      unless node.is_a?(Hash) && node.keys.sort == %w[ip name role] && node.values.all? { |v| v.is_a?(String) }
        fail_at.call(["nodes", i], "must have exactly name, ip and role (text)", "see the nodes entry in settings.yaml")
      end
      fail_at.call(["nodes", i, "name"], "'#{node['name']}' is not a valid host name", "use lower-case letters, digits and '-'") unless node["name"].match?(HOSTNAME)
      unless limits["roles"].include?(node["role"])
        fail_at.call(["nodes", i, "role"], "'#{node['role']}' is not a role", "use one of: #{limits['roles'].join(', ')}")
      end
      ip = begin
        node["ip"].match?(/\A\d{1,3}(\.\d{1,3}){3}\z/) ? IPAddr.new(node["ip"]) : nil
      rescue IPAddr::Error
        nil
      end
      fail_at.call(["nodes", i, "ip"], "'#{node['ip']}' is not an IPv4 address", "use an address like 192.168.56.10") unless ip
      unless allowed.include?(ip)
        fail_at.call(["nodes", i, "ip"], "#{ip} is outside VirtualBox's host-only range #{limits['hostonly_range']}",
                     "pick an address in 192.168.56.2-192.168.63.254, like 192.168.56.10")
      end
      if [0, 1, 255].include?(ip.to_i & 0xff)
        fail_at.call(["nodes", i, "ip"], "#{ip} is reserved (network, broadcast or the host's own .1 address)",
                     "pick an address ending in 2-254, like 192.168.56.10")
      end
      if names.include?(node["name"]) || ips.include?(node["ip"])
        fail_at.call(["nodes", i], "repeats the name or IP of another node (#{node['name']}, #{node['ip']})", "give every node its own name and IP")
      end
      names << node["name"]
      ips << node["ip"]
    end
    fail_at.call(["nodes"], "has no node with role master", "make the first node role: master") unless nodes.any? { |n| n["role"] == "master" }
  end

  # `workers: N` appends N worker nodes (worker-1, ...: the first free names) on the addresses after the
  # highest listed one (labkit/settings.py _add_workers).
  def add_workers(data, limits, fail_at)
    count = data["workers"]
    nodes = data["nodes"]
    fail_at.call(["workers"], "= #{count} is not a number of workers", "use 0 or more, like LABKIT_WORKERS=2") if count.negative?
    allowed = IPAddr.new(limits["hostonly_range"])
    last = nodes.map { |n| IPAddr.new(n["ip"]).to_i }.max
    if last + count > allowed.to_range.last.to_i
      fail_at.call(["workers"], "= #{count} does not fit: the addresses after #{IPAddr.new(last, Socket::AF_INET)} leave " \
                                "VirtualBox's host-only range #{limits['hostonly_range']}", "use fewer workers, or list the nodes in settings.local.yaml")
    end
    names = nodes.map { |n| n["name"] }
    number = 0
    (1..count).each do |k|
      ip = IPAddr.new(last + k, Socket::AF_INET)
      if [0, 1, 255].include?(ip.to_i & 0xff)
        fail_at.call(["workers"], "= #{count} would give a worker the reserved address #{ip}",
                     "use fewer workers, or list the nodes in settings.local.yaml")
      end
      number += 1
      number += 1 while names.include?("worker-#{number}")
      names << "worker-#{number}"
      nodes << { "name" => "worker-#{number}", "ip" => ip.to_s, "role" => "worker" }
    end
  end
end

# `ruby vagrant/settings.rb ROOT [HOST_CPU]` prints the resolved settings as JSON (the consistency test
# uses it; HOST_CPU stands in for this machine's CPU, as labkit.settings.load's host_cpu does).
if $PROGRAM_NAME == __FILE__
  begin
    root = ARGV.fetch(0, File.expand_path("..", __dir__))
    puts JSON.generate(ARGV[1] ? LabkitSettings.load(root, ENV, ARGV[1]) : LabkitSettings.load(root))
  rescue LabkitSettings::Error => e
    warn "labkit: #{e.message}"
    exit 1
  end
end
