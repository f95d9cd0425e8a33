# Loads the project's Vagrantfile with a recording stand-in for Vagrant's configuration DSL and prints,
# as JSON, every provider customization and synced folder it declares per machine and provider.
# VirtualBox cannot run here, so `vagrant validate` stops before reading its provider block; this
# shows what that block would give VirtualBox. Usage: ruby vagrantfile_calls.rb PROJECT_DIR
require "json"

class Recorder
  def initialize(path, log)
    @path = path
    @log = log
  end

  def method_missing(name, *args, **kwargs, &block)
    @log << { "path" => @path, "call" => name.to_s, "args" => args.map { |a| a.is_a?(Array) ? a.map(&:to_s) : a.to_s },
              "options" => kwargs.transform_keys(&:to_s).transform_values { |v| v.is_a?(Array) ? v.map(&:to_s) : v.to_s } }
    here = @path + ["#{name}(#{args.first})"]
    if block
      recorders = [Recorder.new(here, @log), Recorder.new(here + ["override"], @log)]
      block.call(*recorders.first(block.arity.abs.clamp(1, 2)))
    end
    Recorder.new(here, @log)
  end

  def respond_to_missing?(*) = true
end

module Vagrant
  def self.require_version(*); end

  def self.configure(_version)
    log = []
    yield Recorder.new([], log)
    puts JSON.generate(log)
  end
end

Dir.chdir(ARGV.fetch(0)) { load File.join(Dir.pwd, "Vagrantfile") }
